with

exits as (

    select * from {{ ref('int_exits_classified') }}

),

final as (

    select
        employee_id,
        exit_date,
        exit_type,
        rif_round_id,
        notice_date,
        compliance_rate_13w,
        policy_id,
        org_unit_id,
        job_level
    from exits

)

select * from final
