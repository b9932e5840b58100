with

org_units as (

    select * from {{ ref('int_org_units_enriched') }}

),

final as (

    select
        org_unit_id,
        org_unit_name,
        parent_org_unit_id,
        kind,
        head_employee_id,
        department_id,
        depth_below_root
    from org_units

)

select * from final
