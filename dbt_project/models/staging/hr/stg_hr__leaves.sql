with

source as (

    select * from {{ source('hr', 'hr_leave') }}

),

newest_snapshot as (

    -- full extract: only the newest delivery is the truth
    select * from source
    where _delivery_date = (select max(_delivery_date) from source)

),

final as (

    select
        leave_id,
        employee_id,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        leave_type,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from newest_snapshot

)

select * from final
