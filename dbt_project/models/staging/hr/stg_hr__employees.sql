with

source as (

    select * from {{ source('hr', 'hr_employees') }}

),

newest_snapshot as (

    -- full extract: only the newest delivery is the truth
    select * from source
    where _delivery_date = (select max(_delivery_date) from source)

),

final as (

    select
        employee_id,
        full_name,
        email,
        cast(hire_date as date) as hire_date,
        cast(termination_date as date) as termination_date,
        termination_reason,
        worker_type,
        home_site_id,
        country,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from newest_snapshot

)

select * from final
