{#
    One row per employee and office date (the site-local date of the event)
    with at least one counting badge event: result GRANTED, badge of type
    EMPLOYEE, and the badge assigned to the employee at the event time
    (valid_from <= event_time < valid_to, open valid_to = still valid).
    Events are already one per event_id (stg_badge__events).

    first_event_utc / last_event_utc convert the site-local times to UTC with
    the site's IANA zone (macro local_to_utc: ambiguous times take the first
    occurrence, times in the spring-forward gap move forward by the gap).
    They feed the dwell-time rule (min_presence_minutes). An event at a site
    missing from hr_sites, or whose zone name is unknown, still counts for
    presence; its time is then taken as if it were UTC.
#}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ rebuild_scope_delete() }}",
    meta={'rebuild_scope': {'employee': 'employee_id', 'date': 'office_date'}},
) }}

-- depends_on: {{ ref('int_rebuild_scope') }}


with

-- not materialized: DuckDB keeps a copy of a CTE read more than once, which for the
-- badge events (311 M at 350,000 employees) spills tens of GB; reading the table again
-- (for counting_events and for event_dates) costs less
badge_events as not materialized (

    select * from {{ ref('stg_badge__events') }}

),

badge_assignments as (

    select * from {{ ref('stg_badge__assignments') }}

),

sites as (

    select * from {{ ref('stg_hr__sites') }}

),

site_zones as (

    -- a zone name the engine does not know is treated like a missing one
    select
        sites.site_id,
        known_timezones.name as timezone
    from sites
    inner join {{ known_timezones() }} as known_timezones
        on sites.timezone = known_timezones.name

),

counting_events as (

    {%- set counting_events_of %}
    select
        badge_assignments.employee_id,
        badge_events.office_date,
        badge_events.event_id,
        badge_events.site_id,
        site_zones.timezone,
        badge_events.event_time
    from {days} as badge_events
    inner join {people} as badge_assignments
        on badge_events.badge_id = badge_assignments.badge_id
        and (
            badge_assignments.valid_from is null
            or badge_assignments.valid_from <= badge_events.event_time
        )
        and (
            badge_assignments.valid_to is null
            or badge_events.event_time < badge_assignments.valid_to
        )
    left join site_zones
        on badge_events.site_id = site_zones.site_id
    where badge_events.result = 'GRANTED'
        and badge_assignments.badge_type = 'EMPLOYEE'
        and badge_assignments.employee_id is not null
    {%- endset %}
    {{ join_within_rebuild_scope(
        counting_events_of,
        days='badge_events', date_column='office_date',
        people='badge_assignments', employee_column='employee_id',
    ) }}

),

event_dates as (

    -- the span of the event dates: a scan of one column
    select
        min(badge_events.office_date) as first_date,
        max(badge_events.office_date) as last_date
    from badge_events

),

site_days as (

    -- Every site with a known zone on every date of the events' span: the same
    -- offsets for the events converted below as the distinct (site, date) of the
    -- events, without a distinct over every event each night (311 M rows at
    -- 350,000 employees), from a scan of one column. Taken
    -- from counting_events (computed a second time), the first build at 350,000
    -- employees ran out of memory under 4GB and 6GB.
    select
        site_zones.site_id,
        site_zones.timezone,
        dates.office_date,
        cast(dates.office_date as timestamp) as day_first_second,
        {{ dbt.dateadd('second', 86399, 'cast(dates.office_date as timestamp)') }}
            as day_last_second
    from site_zones
    cross join (
        select {{ date_series('event_dates.first_date', 'event_dates.last_date') }} as office_date
        from event_dates
        where event_dates.first_date is not null
    ) as dates

),

site_day_offsets as (

    -- The UTC offset of a site on a local date, taken at its first and last
    -- second. On the few dates where they differ (a DST change) every event
    -- is converted on its own; on all others one offset per site and date
    -- serves every event: the same result for a fraction of the time-zone
    -- lookups (badge events are the largest table).
    select
        site_id,
        office_date,
        {{ local_to_utc('day_first_second', 'timezone') }} - day_first_second as offset_at_start,
        {{ local_to_utc('day_last_second', 'timezone') }} - day_last_second as offset_at_end
    from site_days

),

converted as (

    select
        counting_events.employee_id,
        counting_events.office_date,
        counting_events.event_id,
        counting_events.site_id,
        case
            when site_day_offsets.site_id is null then counting_events.event_time
            when site_day_offsets.offset_at_start = site_day_offsets.offset_at_end
                then counting_events.event_time + site_day_offsets.offset_at_start
            else {{ local_to_utc('counting_events.event_time', 'counting_events.timezone') }}
        end as event_time_utc
    from counting_events
    left join site_day_offsets
        on counting_events.site_id = site_day_offsets.site_id
        and counting_events.office_date = site_day_offsets.office_date

),

final as (

    select
        employee_id,
        office_date,
        cast(count(*) as integer) as counting_events,
        min(event_time_utc) as first_event_utc,
        max(event_time_utc) as last_event_utc
    from converted
    group by
        employee_id,
        office_date

)

select * from final
