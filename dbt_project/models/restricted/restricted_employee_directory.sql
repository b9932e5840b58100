{#
    The only model that carries employee names and emails: the HR-restricted
    directory. Built on the postgres target only (dbt_project.yml), where the
    role hr_restricted alone may read its schema; the DuckDB build file is
    never served to anyone who could bypass that, so it is not built there.
#}
with

employees as (

    select * from {{ ref('stg_hr__employees') }}

),

final as (

    select
        employee_id,
        full_name,
        email,
        worker_type,
        hire_date,
        termination_date,
        source_path,
        source_line_number
    from employees

)

select * from final
