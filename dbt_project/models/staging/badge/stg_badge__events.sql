{#
    One row per badge event id: vendors re-send files, and the same event_id
    delivered again is one event; the first loaded row wins (earliest delivery
    date, then source path by code point, then line number).

    Incremental (DESIGN.md "Incremental builds"), so that a night reads and
    ranks only what it brought instead of the whole event history:
    - the night's rows are those of files this table holds no row from (new
      files; also files whose every row lost to an earlier copy, which are few
      and ranked again each night);
    - every delivered copy of those rows' event ids is ranked again, so a late
      file with an earlier delivery date still wins, as in a full build;
    - delete+insert on event_id replaces the previous winner of each such id;
    - the pre-hook first drops the rows of files no longer in raw.badge_events
      (the retention task purged them).
#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='fail',
    pre_hook="{{ badge_events_drop_removed_files() }}",
    meta={'new_files_scope': {'source': ['badge', 'badge_events'], 'key': 'event_id'}},
) }}

with

source as (

    select * from {{ source('badge', 'badge_events') }}

),

{% if is_incremental() %}

loaded_files as (

    select distinct source_file_id from {{ this }}

),

night_rows as (

    select source.*
    from source
    where not exists (
        select 1 from loaded_files where loaded_files.source_file_id = source._file_id
    )

),

candidates as (

    select source.*
    from source
    where source.event_id in (select night_rows.event_id from night_rows)

),

{% else %}

candidates as (

    select * from source

),

{% endif %}

ranked as (

    select
        candidates.*,
        row_number() over (
            partition by event_id
            order by _delivery_date, {{ code_point_order('_source_path') }}, _line_number
        ) as load_rank
    from candidates

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
        _line_number as source_line_number,
        _file_id as source_file_id

    from ranked
    where load_rank = 1

)

select * from final
