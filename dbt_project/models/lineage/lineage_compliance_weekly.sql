{{ config(enabled=(target.type == 'duckdb' and var('lineage_views', false))) }}

-- Which files a weekly compliance row came from: the files holding the badge events of
-- the employee's badges in that week (the row kept after de-duplication), the badge
-- assignment snapshot, and the HR snapshot rows of the employee (employee, job history,
-- leave overlapping the week).
with

weeks as (

    select employee_id, week_start from {{ ref('fct_rto_compliance_weekly') }}

),

assignments as (

    select * from {{ ref('stg_badge__assignments') }}

),

events as (

    select * from {{ ref('stg_badge__events') }}

),

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

job_history as (

    select * from {{ ref('stg_hr__job_history') }}

),

leaves as (

    select * from {{ ref('stg_hr__leaves') }}

),

files as (

    select * from {{ ref('lineage_source_files') }}

),

badge_event_files as (

    select distinct
        weeks.employee_id,
        weeks.week_start,
        'badge_events' as role,
        events.source_path
    from weeks
    inner join assignments
        on weeks.employee_id = assignments.employee_id
    inner join events
        on assignments.badge_id = events.badge_id
        and events.event_time >= assignments.valid_from
        and (assignments.valid_to is null or events.event_time < assignments.valid_to)
        and events.office_date between weeks.week_start and {{ dbt.dateadd('day', 6, 'weeks.week_start') }}

),

assignment_files as (

    select distinct weeks.employee_id, weeks.week_start, 'badge_assignments' as role, assignments.source_path
    from weeks
    inner join assignments on weeks.employee_id = assignments.employee_id

),

employee_files as (

    select distinct weeks.employee_id, weeks.week_start, 'hr_employees' as role, employees.source_path
    from weeks
    inner join employees on weeks.employee_id = employees.employee_id

),

job_history_files as (

    select distinct weeks.employee_id, weeks.week_start, 'hr_job_history' as role, job_history.source_path
    from weeks
    inner join job_history on weeks.employee_id = job_history.employee_id

),

leave_files as (

    select distinct weeks.employee_id, weeks.week_start, 'hr_leave' as role, leaves.source_path
    from weeks
    inner join leaves
        on weeks.employee_id = leaves.employee_id
        and (leaves.start_date is null or leaves.start_date <= {{ dbt.dateadd('day', 6, 'weeks.week_start') }})
        and (leaves.end_date is null or leaves.end_date >= weeks.week_start)

),

all_files as (

    select * from badge_event_files
    union all
    select * from assignment_files
    union all
    select * from employee_files
    union all
    select * from job_history_files
    union all
    select * from leave_files

),

final as (

    select
        all_files.employee_id,
        all_files.week_start,
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
