with

source as (

    select * from {{ source('hr', 'hr_exceptions') }}

),

newest_snapshot as (

    -- full extract: only the newest delivery is the truth
    select * from source
    where _delivery_date = (select max(_delivery_date) from source)

),

final as (

    select
        exception_id,
        scope,
        subject_id,
        cast(required_days_per_week as integer) as required_days_per_week,
        reason,
        approved_by,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from newest_snapshot

)

select * from final
