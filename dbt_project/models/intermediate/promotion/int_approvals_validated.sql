{#
    One row per nomination that has at least one VP approval: the approval
    the gate reports.

    An approval is valid when the approver held job level 10 or higher on the
    approval date (newest job_history row with effective_date <= approved_on)
    and approved on or before the nomination's decided_on (or at any time
    while it is pending, decided_on null). Several approvals: the valid one
    with the earliest approved_on, then the smallest approval_id; when none is
    valid, the earliest invalid one by the same order.
#}

with

approvals as (

    select * from {{ ref('stg_hr__approvals') }}

),

nominations as (

    select * from {{ ref('stg_hr__nominations') }}

),

job_versions as (

    select * from {{ ref('int_job_history_versioned') }}

),

checked as (

    select
        approvals.approval_id,
        approvals.nomination_id,
        approvals.approver_id,
        approvals.approved_on,
        job_versions.job_level as approver_job_level,
        coalesce(
            job_versions.job_level >= {{ var('vp_min_job_level') }}
            and (nominations.decided_on is null or approvals.approved_on <= nominations.decided_on),
            false
        ) as approval_valid
    from approvals
    inner join nominations
        on approvals.nomination_id = nominations.nomination_id
    left join job_versions
        on approvals.approver_id = job_versions.employee_id
        and job_versions.valid_from <= approvals.approved_on
        and (job_versions.valid_to is null or approvals.approved_on < job_versions.valid_to)

),

ranked as (

    select
        checked.*,
        row_number() over (
            partition by nomination_id
            order by
                case when approval_valid then 0 else 1 end,
                approved_on nulls last,
                {{ code_point_order('approval_id') }} nulls last
        ) as report_rank
    from checked

),

final as (

    select
        nomination_id,
        approval_id,
        approver_id,
        approved_on,
        approver_job_level,
        approval_valid
    from ranked
    where report_rank = 1

)

select * from final
