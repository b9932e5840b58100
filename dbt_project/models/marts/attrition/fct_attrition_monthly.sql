{#
    One row per month, department and compliance band with a non-zero figure.

    - headcount_start: employees employed on the month start, by their
      department and band at the month start;
    - hires: hired during the month, by their department on the hire date
      (band no_requirement: they were not employed at the month start, or,
      hired on the 1st, have no week before it);
    - headcount_end: employed on the month's last day, by their department on
      that day and their band at the month start (no_requirement when hired
      during the month);
    - exits_*: exits in the month of exit_date, by the department of the
      exit's org unit and the band at that month's start;
    - attrition_rate = all exits / ((headcount_start + headcount_end) / 2),
      null when that average is 0.
#}

with

employee_months as (

    select * from {{ ref('int_employee_months_banded') }}

),

exits as (

    select * from {{ ref('int_exits_classified') }}

),

org_units as (

    select * from {{ ref('int_org_units_enriched') }}

),

covered_months as (

    select * from {{ ref('int_calendar_months') }}

),

starts as (

    select
        month_start,
        department_id_at_start as department_id,
        compliance_band,
        1 as headcount_start,
        0 as headcount_end,
        0 as hires,
        0 as exits_voluntary,
        0 as exits_involuntary,
        0 as exits_layoff
    from employee_months
    where is_employed_at_start

),

ends as (

    select
        month_start,
        department_id_at_end as department_id,
        compliance_band,
        0 as headcount_start,
        1 as headcount_end,
        0 as hires,
        0 as exits_voluntary,
        0 as exits_involuntary,
        0 as exits_layoff
    from employee_months
    where is_employed_at_end

),

hires as (

    select
        month_start,
        department_id_at_hire as department_id,
        compliance_band,
        0 as headcount_start,
        0 as headcount_end,
        1 as hires,
        0 as exits_voluntary,
        0 as exits_involuntary,
        0 as exits_layoff
    from employee_months
    where is_hired_in_month

),

month_exits as (

    select
        covered_months.month_start,
        org_units.department_id,
        coalesce(employee_months.compliance_band, 'no_requirement') as compliance_band,
        0 as headcount_start,
        0 as headcount_end,
        0 as hires,
        case when exits.exit_type = 'voluntary' then 1 else 0 end as exits_voluntary,
        case when exits.exit_type = 'involuntary' then 1 else 0 end as exits_involuntary,
        case when exits.exit_type = 'layoff' then 1 else 0 end as exits_layoff
    from exits
    inner join covered_months
        on exits.exit_date >= covered_months.month_start
        and exits.exit_date <= covered_months.month_end
    left join employee_months
        on exits.employee_id = employee_months.employee_id
        and covered_months.month_start = employee_months.month_start
    left join org_units
        on exits.org_unit_id = org_units.org_unit_id

),

movements as (

    select * from starts
    union all
    select * from ends
    union all
    select * from hires
    union all
    select * from month_exits

),

aggregated as (

    select
        month_start,
        department_id,
        compliance_band,
        cast(sum(headcount_start) as integer) as headcount_start,
        cast(sum(headcount_end) as integer) as headcount_end,
        cast(sum(hires) as integer) as hires,
        cast(sum(exits_voluntary) as integer) as exits_voluntary,
        cast(sum(exits_involuntary) as integer) as exits_involuntary,
        cast(sum(exits_layoff) as integer) as exits_layoff
    from movements
    group by
        month_start,
        department_id,
        compliance_band

),

final as (

    select
        month_start,
        department_id,
        compliance_band,
        headcount_start,
        headcount_end,
        hires,
        exits_voluntary,
        exits_involuntary,
        exits_layoff,
        case
            when headcount_start + headcount_end > 0
                then cast(exits_voluntary + exits_involuntary + exits_layoff as double precision)
                    / (cast(headcount_start + headcount_end as double precision) / 2)
        end as attrition_rate
    from aggregated
    where headcount_start <> 0
        or headcount_end <> 0
        or hires <> 0
        or exits_voluntary <> 0
        or exits_involuntary <> 0
        or exits_layoff <> 0

)

select * from final
