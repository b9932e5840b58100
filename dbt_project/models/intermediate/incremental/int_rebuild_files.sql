{#
    The raw files present when tonight's build starts, one row per source
    table and file (_file_id), for the inputs of the incremental models.
    int_rebuild_scope compares it with the files the last successful build
    used (int_rebuild_state_files); int_rebuild_state_files records it once
    the weekly fact is built. Taking the list once, at the start, means a
    file loaded while the build runs is treated as new by the next night.
#}

with

raw_files as (

    select
        'hr_sites' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_sites') }}
    group by _file_id

    union all

    select
        'hr_org_units' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_org_units') }}
    group by _file_id

    union all

    select
        'hr_employees' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_employees') }}
    group by _file_id

    union all

    select
        'hr_job_history' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_job_history') }}
    group by _file_id

    union all

    select
        'hr_leave' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_leave') }}
    group by _file_id

    union all

    select
        'hr_holidays' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_holidays') }}
    group by _file_id

    union all

    select
        'hr_team_policies' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_team_policies') }}
    group by _file_id

    union all

    select
        'hr_exceptions' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('hr', 'hr_exceptions') }}
    group by _file_id

    union all

    select
        'badge_assignments' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('badge', 'badge_assignments') }}
    group by _file_id

    union all

    select
        'badge_events' as source_table,
        _file_id as file_id,
        max(_delivery_date) as delivery_date
    from {{ source('badge', 'badge_events') }}
    group by _file_id

),

final as (

    select
        cast(source_table as {{ dbt.type_string() }}) as source_table,
        cast(file_id as {{ dbt.type_string() }}) as file_id,
        cast(delivery_date as date) as delivery_date
    from raw_files

)

select * from final
