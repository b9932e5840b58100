{#
    One row per employee and job version: the job_history row in force from
    its effective_date (valid_from) until the next row's effective_date
    (valid_to, exclusive; null for the newest). "An employee's job level, org
    unit and manager on a day come from the newest job_history row with
    effective_date <= that day." Two rows on the same effective_date: the one
    later in the file wins.
#}

with

job_history as (

    select * from {{ ref('stg_hr__job_history') }}

),

one_row_per_date as (

    select
        job_history.*,
        row_number() over (
            partition by employee_id, effective_date
            order by source_line_number desc nulls last
        ) as same_day_rank
    from job_history
    where effective_date is not null

),

versioned as (

    select
        employee_id,
        effective_date as valid_from,
        lead(effective_date) over (
            partition by employee_id
            order by effective_date
        ) as valid_to,
        job_level,
        job_family,
        org_unit_id,
        manager_id,
        job_event
    from one_row_per_date
    where same_day_rank = 1

),

final as (

    select * from versioned

)

select * from final
