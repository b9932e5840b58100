with

calendar_days as (

    select * from {{ ref('int_calendar_days') }}

),

final as (

    select
        date_day,
        week_start,
        iso_year,
        iso_week,
        iso_day_of_week,
        month_start,
        is_weekday,
        is_covered,
        policy_id
    from calendar_days

)

select * from final
