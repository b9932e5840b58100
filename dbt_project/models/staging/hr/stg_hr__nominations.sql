with

source as (

    select * from {{ source('hr', 'hr_nominations') }}

),

newest_snapshot as (

    -- full extract: only the newest delivery is the truth
    select * from source
    where _delivery_date = (select max(_delivery_date) from source)

),

final as (

    select
        nomination_id,
        cycle_id,
        employee_id,
        cast(from_level as integer) as from_level,
        cast(to_level as integer) as to_level,
        cast(nominated_on as date) as nominated_on,
        cast(decided_on as date) as decided_on,
        outcome,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from newest_snapshot

)

select * from final
