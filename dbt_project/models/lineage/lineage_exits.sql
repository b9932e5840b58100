{{ config(enabled=(target.type == 'duckdb' and var('lineage_views', false))) }}

-- Which files an exit row came from: the employee's HR rows and RIF notices (the rate
-- before the notice is traced by lineage_compliance_weekly).
with

exits as (

    select employee_id from {{ ref('fct_exits') }}

),

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

job_history as (

    select * from {{ ref('stg_hr__job_history') }}

),

rif_notices as (

    select * from {{ ref('stg_layoffs__rif_notices') }}

),

files as (

    select * from {{ ref('lineage_source_files') }}

),

all_files as (

    select exits.employee_id, 'hr_employees' as role, employees.source_path
    from exits
    inner join employees on exits.employee_id = employees.employee_id
    union
    select exits.employee_id, 'hr_job_history' as role, job_history.source_path
    from exits
    inner join job_history on exits.employee_id = job_history.employee_id
    union
    select exits.employee_id, 'layoffs_rif_notices' as role, rif_notices.source_path
    from exits
    inner join rif_notices on exits.employee_id = rif_notices.employee_id

),

final as (

    select
        all_files.employee_id,
        all_files.role,
        files.source_path,
        files.file_id,
        files.sha256,
        files.delivery_date,
        files.loaded_by_run_id

    from all_files
    inner join files on all_files.source_path = files.source_path

)

select * from final
