{#
    One row per calendar day of the spine, with its ISO week and the company
    policy in force that day (seed rto_policies, effective_from <= day <
    effective_to, open end = null; before the first policy: none).
#}

with

bounds as (

    select * from {{ ref('int_calendar_bounds') }}

),

rto_policies as (

    select * from {{ ref('rto_policies') }}

),

spine as (

    select {{ date_series('bounds.spine_start', 'bounds.spine_end') }} as date_day
    from bounds
    where bounds.spine_start is not null
        and bounds.spine_end is not null

),

final as (

    select
        spine.date_day,
        {{ week_start('spine.date_day') }} as week_start,
        {{ iso_day_of_week('spine.date_day') }} as iso_day_of_week,
        {{ iso_year('spine.date_day') }} as iso_year,
        {{ iso_week('spine.date_day') }} as iso_week,
        {{ month_start('spine.date_day') }} as month_start,
        {{ iso_day_of_week('spine.date_day') }} <= 5 as is_weekday,
        spine.date_day >= bounds.coverage_start
            and spine.date_day <= bounds.coverage_end as is_covered,
        rto_policies.policy_id,
        rto_policies.kind as policy_kind,
        rto_policies.required_days_per_week as policy_required_days,
        rto_policies.min_presence_minutes
    from spine
    cross join bounds
    left join rto_policies
        on rto_policies.effective_from <= spine.date_day
        and (rto_policies.effective_to is null or spine.date_day < rto_policies.effective_to)

)

select * from final
