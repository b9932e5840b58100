{{ config(enabled=(target.type == 'duckdb' and var('lineage_views', false))) }}

-- Which files a promotion-gate row came from: the nomination and approval rows, and the
-- HR rows of the nominee and approvers. Its compliance rate comes from the weekly rows of
-- the lookback, traced by lineage_compliance_weekly (employee_id, week_start between
-- lookback_start and lookback_end).
with

gate as (

    select nomination_id, employee_id from {{ ref('fct_promotion_gate') }}

),

nominations as (

    select * from {{ ref('stg_hr__nominations') }}

),

approvals as (

    select * from {{ ref('stg_hr__approvals') }}

),

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

job_history as (

    select * from {{ ref('stg_hr__job_history') }}

),

files as (

    select * from {{ ref('lineage_source_files') }}

),

people as (

    select gate.nomination_id, gate.employee_id from gate
    union
    select approvals.nomination_id, approvals.approver_id as employee_id
    from approvals
    inner join gate on approvals.nomination_id = gate.nomination_id

),

all_files as (

    select gate.nomination_id, 'hr_nominations' as role, nominations.source_path
    from gate
    inner join nominations on gate.nomination_id = nominations.nomination_id
    union
    select gate.nomination_id, 'hr_approvals' as role, approvals.source_path
    from gate
    inner join approvals on gate.nomination_id = approvals.nomination_id
    union
    select people.nomination_id, 'hr_employees' as role, employees.source_path
    from people
    inner join employees on people.employee_id = employees.employee_id
    union
    select people.nomination_id, 'hr_job_history' as role, job_history.source_path
    from people
    inner join job_history on people.employee_id = job_history.employee_id

),

final as (

    select
        all_files.nomination_id,
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
