{#
    gate_status: not_gated when the gate does not apply; eligible when the
    compliance rate reaches the threshold or is null (no week with a
    requirement); eligible_vp_approved when below the threshold but a valid VP
    approval exists; blocked otherwise. The threshold is compared in exact
    decimal arithmetic (weeks_compliant >= threshold * weeks_required).

    audit_flag: promoted_while_blocked (outcome promoted and status blocked)
    takes precedence over invalid_approval (the reported approval is invalid,
    whether or not the gate applies); else null.
#}

with

nominations as (

    select * from {{ ref('int_nominations_lookback') }}

),

approvals as (

    select * from {{ ref('int_approvals_validated') }}

),

gated as (

    select
        nominations.*,
        {{ compliance_rate('nominations.weeks_compliant', 'nominations.weeks_required') }}
            as compliance_rate,
        approvals.approval_id,
        approvals.approval_valid,
        case
            when not nominations.gate_applies then 'not_gated'
            when nominations.weeks_required = 0 then 'eligible'
            when nominations.weeks_compliant >= nominations.threshold * nominations.weeks_required
                then 'eligible'
            when approvals.approval_valid then 'eligible_vp_approved'
            else 'blocked'
        end as gate_status
    from nominations
    left join approvals
        on nominations.nomination_id = approvals.nomination_id

),

final as (

    select
        nomination_id,
        cycle_id,
        employee_id,
        nominated_on,
        lookback_start,
        lookback_end,
        weeks_required,
        weeks_compliant,
        compliance_rate,
        gate_applies,
        gate_status,
        approval_id,
        approval_valid,
        outcome,
        case
            when outcome = 'promoted' and gate_status = 'blocked' then 'promoted_while_blocked'
            when approval_id is not null and not approval_valid then 'invalid_approval'
        end as audit_flag
    from gated

)

select * from final
