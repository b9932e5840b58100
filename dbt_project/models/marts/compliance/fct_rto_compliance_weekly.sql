with

employee_weeks as (

    select * from {{ ref('int_employee_weeks_aggregated') }}

),

final as (

    select
        employee_id,
        week_start,
        org_unit_id,
        policy_id,
        available_days,
        required_days,
        office_days,
        status,
        has_exception
    from employee_weeks

)

select * from final
