{#
    One row per org unit (of the org tree or named in job history) and each
    of its ancestors, the unit itself included (depth 0 = the unit, 1 = its
    parent, ...). Used for "the org unit or its nearest ancestor that has ..."
    lookups. The depth limit stops the recursion on a cycle in a bad extract.
#}

with recursive

org_units as (

    select * from {{ ref('stg_hr__org_units') }}

),

job_history as (

    select * from {{ ref('stg_hr__job_history') }}

),

referenced_units as (

    -- an org unit named in job history but missing from the org tree is
    -- still its own depth-0 "ancestor" (its own exceptions still apply)
    select org_unit_id from org_units
    union
    select org_unit_id from job_history

),

ancestors (org_unit_id, ancestor_org_unit_id, depth) as (

    select
        referenced_units.org_unit_id,
        referenced_units.org_unit_id,
        0
    from referenced_units
    where referenced_units.org_unit_id is not null

    union all

    select
        ancestors.org_unit_id,
        org_units.parent_org_unit_id,
        ancestors.depth + 1
    from ancestors
    inner join org_units
        on ancestors.ancestor_org_unit_id = org_units.org_unit_id
    where org_units.parent_org_unit_id is not null
        and ancestors.depth < 100

),

final as (

    -- a cycle in a bad extract would list an ancestor again further up:
    -- keep its nearest position
    select
        org_unit_id,
        ancestor_org_unit_id,
        cast(min(depth) as integer) as depth
    from ancestors
    group by
        org_unit_id,
        ancestor_org_unit_id

)

select * from final
