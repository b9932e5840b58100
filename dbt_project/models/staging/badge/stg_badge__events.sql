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
    - delete+insert on event_id replaces the previous winner of each such id
      (strategy delete_insert_in_key_ranges: dbt's delete+insert, its delete
      narrowed to the new rows' id ranges, macros/incremental.sql);
    - the pre-hook first drops the rows of files no longer in raw.badge_events
      (the retention task purged them).

    The first build (and --full-refresh) ranks only the files whose ids can
    repeat: see `files_to_rank` below; the other rows are kept as they are.
#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete_insert_in_key_ranges',
    unique_key='event_id',
    on_schema_change='fail',
    pre_hook="{{ badge_events_drop_removed_files() }}",
    meta={'new_files_scope': {'source': ['badge', 'badge_events'], 'key': 'event_id'}},
) }}

with

-- not materialized: the CTE is read several times, and DuckDB would otherwise keep a
-- copy of every raw event (311 M at 350,000 employees: a 54 GB spill) for the reads
source as not materialized (

    select * from {{ source('badge', 'badge_events') }}

),

{% if is_incremental() %}

{#- the night files' id ranges, as constants: a night file's rows lie in them -#}
{%- set night_key_ranges = key_ranges_of_files(
    source('badge', 'badge_events'), 'event_id',
    "not exists (select 1 from (select distinct source_file_id from " ~ this
    ~ ") as loaded where loaded.source_file_id = r._file_id)",
    column='source.event_id',
) %}

loaded_files as (

    select distinct source_file_id from {{ this }}

),

night_rows as (

    -- the ranges first: DuckDB skips the raw row groups outside them by their
    -- min/max instead of comparing every raw row's file with loaded_files
    -- (bench/RESULTS.md, 2026-12-08)
    select source.*
    from source
    where {{ night_key_ranges }}
        and not exists (
            select 1 from loaded_files where loaded_files.source_file_id = source._file_id
        )

),

candidates as (

    -- the same ranges narrow the scan of every raw event before the
    -- comparison with the night's ids (bench/RESULTS.md, 2026-12-07)
    select source.*
    from source
    where {{ night_key_ranges }}
        and source.event_id in (select night_rows.event_id from night_rows)

),

{% else %}

-- First build: ranking all of a large history (a window over every event) is the
-- costly part, so only the rows that can share an id with another row are ranked.
-- A file's ids cannot repeat inside it when they increase down the file, and cannot
-- repeat in another file when its id range overlaps no other file's range. The check
-- uses the rows as scanned: a file whose rows do not come as one run in line order is
-- simply ranked, so the result never depends on the scan order, only the speed does.
scanned as (

    select
        _file_id,
        event_id,
        lag(_file_id) over () = _file_id
            and lag(_line_number) over () < _line_number
            and lag(event_id) over () < event_id as follows_in_file
    from source

),

files as (

    select
        _file_id,
        min(event_id) as first_event_id,
        max(event_id) as last_event_id,
        count(*) - 1 = sum(case when follows_in_file then 1 else 0 end) as ids_increase
    from scanned
    group by _file_id

),

files_in_id_order as (

    select
        files.*,
        max(last_event_id) over (
            order by first_event_id, _file_id rows between unbounded preceding and 1 preceding
        ) as last_event_id_before,
        lead(first_event_id) over (order by first_event_id, _file_id) as next_first_event_id
    from files

),

files_to_rank as (

    select _file_id
    from files_in_id_order
    where not ids_increase
        or last_event_id_before >= first_event_id
        or next_first_event_id <= last_event_id

),

candidates as (

    select source.*
    from source
    where source._file_id is null  -- never from the loader; ranked all the same
        or source._file_id in (select files_to_rank._file_id from files_to_rank)

),

unique_rows as (

    select source.*, 1 as load_rank
    from source
    where source._file_id is not null
        and not exists (
            select 1 from files_to_rank where files_to_rank._file_id = source._file_id
        )

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

kept as (

    select * from ranked where load_rank = 1
    {% if not is_incremental() %}
    union all
    select * from unique_rows
    {% endif %}

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

    from kept

)

select * from final
