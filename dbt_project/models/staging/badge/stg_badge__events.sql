with

source as (

    select * from {{ source('badge', 'badge_events') }}

),

ranked as (

    -- vendors re-send files: one event_id is one event, the first loaded row wins
    select
        source.*,
        row_number() over (
            partition by event_id
            order by _delivery_date, {{ code_point_order('_source_path') }}, _line_number
        ) as load_rank
    from source

),

final as (

    select
        event_id,
        badge_id,
        site_id,
        reader_id,
        cast(event_time as timestamp) as event_time,
        -- event times are site-local wall-clock times: the local date is the office date
        cast(event_time as date) as office_date,
        direction,
        result,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from ranked
    where load_rank = 1

)

select * from final
