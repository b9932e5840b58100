with

source as (

    select * from {{ source('badge', 'badge_assignments') }}

),

newest_snapshot as (

    -- full file every night: only the newest delivery is the truth
    select * from source
    where _delivery_date = (select max(_delivery_date) from source)

),

final as (

    select
        badge_id,
        employee_id,
        badge_type,
        cast(valid_from as timestamp) as valid_from,
        cast(valid_to as timestamp) as valid_to,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from newest_snapshot

)

select * from final
