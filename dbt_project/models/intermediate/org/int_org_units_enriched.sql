{#
    One row per org unit with its department: the org unit of kind
    'department' that is the unit itself or its nearest ancestor.
#}

with

org_units as (

    select * from {{ ref('stg_hr__org_units') }}

),

ancestors as (

    select * from {{ ref('int_org_units_ancestors') }}

),

department_candidates as (

    select
        ancestors.org_unit_id,
        ancestors.ancestor_org_unit_id as department_id,
        row_number() over (
            partition by ancestors.org_unit_id
            order by ancestors.depth
        ) as nearness_rank
    from ancestors
    inner join org_units as ancestor_units
        on ancestors.ancestor_org_unit_id = ancestor_units.org_unit_id
    where ancestor_units.kind = 'department'

),

depths as (

    select
        org_unit_id,
        max(depth) as depth_below_root
    from ancestors
    group by org_unit_id

),

final as (

    select
        org_units.org_unit_id,
        org_units.org_unit_name,
        org_units.parent_org_unit_id,
        org_units.kind,
        org_units.head_employee_id,
        department_candidates.department_id,
        cast(depths.depth_below_root as integer) as depth_below_root
    from org_units
    left join department_candidates
        on org_units.org_unit_id = department_candidates.org_unit_id
        and department_candidates.nearness_rank = 1
    left join depths
        on org_units.org_unit_id = depths.org_unit_id

)

select * from final
