{#
    One row per nomination of an employee (worker_type employee; contractors
    are out of scope) with its gate and its lookback figures.

    - The gate row of seed promotion_gate_policies in force is the newest one
      with effective_from <= nominated_on; gate_applies when there is one.
      Before the first gate, the first gate's lookback length is still used to
      report the lookback.
    - lookback_start = Monday of the ISO week of nominated_on - 7 * lookback_weeks
      days, lookback_end = that Monday - 1 day (the N complete ISO weeks before
      the week of the nomination).
    - weeks_required = the employee's weekly rows in the lookback whose status
      is not no_requirement; weeks_compliant = those compliant.
#}

with

all_nominations as (

    select * from {{ ref('stg_hr__nominations') }}

),

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

gate_policies as (

    select * from {{ ref('promotion_gate_policies') }}

),

employee_weeks as (

    select * from {{ ref('int_employee_weeks_aggregated') }}

),

nominations as (

    -- gating covers employees only (contractors are out of scope)
    select all_nominations.*
    from all_nominations
    inner join employees
        on all_nominations.employee_id = employees.employee_id
    where employees.worker_type = 'employee'
        and all_nominations.nominated_on is not null

),

gates_in_force as (

    select
        nominations.nomination_id,
        gate_policies.gate_id,
        gate_policies.lookback_weeks,
        gate_policies.threshold,
        row_number() over (
            partition by nominations.nomination_id
            order by
                gate_policies.effective_from desc nulls last,
                {{ code_point_order('gate_policies.gate_id') }} desc nulls last
        ) as gate_rank
    from nominations
    inner join gate_policies
        on gate_policies.effective_from <= nominations.nominated_on

),

first_gate as (

    select lookback_weeks
    from gate_policies
    order by effective_from, {{ code_point_order('gate_id') }}
    limit 1

),

with_gate as (

    select
        nominations.nomination_id,
        nominations.cycle_id,
        nominations.employee_id,
        nominations.nominated_on,
        nominations.decided_on,
        nominations.outcome,
        gates_in_force.gate_id,
        gates_in_force.gate_id is not null as gate_applies,
        coalesce(gates_in_force.lookback_weeks, first_gate.lookback_weeks) as lookback_weeks,
        gates_in_force.threshold
    from nominations
    left join gates_in_force
        on nominations.nomination_id = gates_in_force.nomination_id
        and gates_in_force.gate_rank = 1
    left join first_gate
        on 1 = 1

),

with_lookback as (

    select
        with_gate.*,
        {{ lookback_start('with_gate.nominated_on', 'with_gate.lookback_weeks') }} as lookback_start,
        {{ lookback_end('with_gate.nominated_on') }} as lookback_end
    from with_gate

),

lookback_weeks_stats as (

    select
        with_lookback.nomination_id,
        sum(case when employee_weeks.status <> 'no_requirement' then 1 else 0 end) as weeks_required,
        sum(case when employee_weeks.status = 'compliant' then 1 else 0 end) as weeks_compliant
    from with_lookback
    inner join employee_weeks
        on with_lookback.employee_id = employee_weeks.employee_id
        and employee_weeks.week_start >= with_lookback.lookback_start
        and employee_weeks.week_start <= with_lookback.lookback_end
    group by with_lookback.nomination_id

),

final as (

    select
        with_lookback.nomination_id,
        with_lookback.cycle_id,
        with_lookback.employee_id,
        with_lookback.nominated_on,
        with_lookback.decided_on,
        with_lookback.outcome,
        with_lookback.gate_id,
        with_lookback.gate_applies,
        with_lookback.threshold,
        with_lookback.lookback_start,
        with_lookback.lookback_end,
        cast(coalesce(lookback_weeks_stats.weeks_required, 0) as integer) as weeks_required,
        cast(coalesce(lookback_weeks_stats.weeks_compliant, 0) as integer) as weeks_compliant
    from with_lookback
    left join lookback_weeks_stats
        on with_lookback.nomination_id = lookback_weeks_stats.nomination_id

)

select * from final
