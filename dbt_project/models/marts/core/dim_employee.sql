{#
    SCD2 from job_history: one row per employee and job version, valid from
    the row's effective_date until the next version's (exclusive, null =
    current). Names and emails are left out on purpose (the serving files
    carry no PII).
#}

with

job_versions as (

    select * from {{ ref('int_job_history_versioned') }}

),

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

org_units as (

    select * from {{ ref('int_org_units_enriched') }}

),

final as (

    select
        job_versions.employee_id,
        job_versions.valid_from,
        job_versions.valid_to,
        job_versions.job_level,
        job_versions.job_family,
        job_versions.org_unit_id,
        org_units.department_id,
        job_versions.manager_id,
        job_versions.job_event,
        employees.home_site_id,
        employees.worker_type,
        employees.country,
        employees.hire_date,
        employees.termination_date,
        job_versions.valid_to is null as is_current
    from job_versions
    left join employees
        on job_versions.employee_id = employees.employee_id
    left join org_units
        on job_versions.org_unit_id = org_units.org_unit_id

)

select * from final
