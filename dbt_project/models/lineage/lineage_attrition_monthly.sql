{{ config(enabled=(target.type == 'duckdb' and var('lineage_views', false))) }}

-- Which files an attrition row came from. A row aggregates a whole department, so it is
-- traced to the snapshot files its inputs were read from (employees, job history, org
-- units, RIF notices) rather than to single rows; the bands come from the weekly rows
-- (lineage_compliance_weekly).
with

attrition as (

    select month_start, department_id, compliance_band from {{ ref('fct_attrition_monthly') }}

),

inputs as (

    select distinct 'hr_employees' as role, source_path from {{ ref('stg_hr__employees') }}
    union
    select distinct 'hr_job_history' as role, source_path from {{ ref('stg_hr__job_history') }}
    union
    select distinct 'hr_org_units' as role, source_path from {{ ref('stg_hr__org_units') }}
    union
    select distinct 'layoffs_rif_notices' as role, source_path
    from {{ ref('stg_layoffs__rif_notices') }}

),

files as (

    select * from {{ ref('lineage_source_files') }}

),

final as (

    select
        attrition.month_start,
        attrition.department_id,
        attrition.compliance_band,
        inputs.role,
        files.source_path,
        files.file_id,
        files.sha256,
        files.delivery_date,
        files.loaded_by_run_id

    from attrition
    cross join inputs
    inner join files on inputs.source_path = files.source_path

)

select * from final
