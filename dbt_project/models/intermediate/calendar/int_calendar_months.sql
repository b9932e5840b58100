{#
    One row per covered calendar month: complete months with month_start >=
    coverage_start and month end <= as_of_date (the attrition months).
#}

with

calendar_days as (

    select * from {{ ref('int_calendar_days') }}

),

bounds as (

    select * from {{ ref('int_calendar_bounds') }}

),

month_starts as (

    select
        date_day as month_start,
        {{ add_days(-1, dbt.dateadd('month', 1, 'date_day')) }} as month_end
    from calendar_days
    where date_day = month_start

),

final as (

    select
        month_starts.month_start,
        month_starts.month_end
    from month_starts
    cross join bounds
    where month_starts.month_start >= bounds.coverage_start
        and month_starts.month_end <= bounds.as_of_date

)

select * from final
