with

source as (

    select * from {{ source('hr', 'hr_job_history') }}

),

newest_snapshot as (

    -- full extract: only the newest delivery is the truth
    select * from source
    where _delivery_date = (select max(_delivery_date) from source)

),

final as (

    select
        employee_id,
        cast(effective_date as date) as effective_date,
        cast(job_level as integer) as job_level,
        job_family,
        org_unit_id,
        manager_id,
        event as job_event,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from newest_snapshot

)

select * from final
