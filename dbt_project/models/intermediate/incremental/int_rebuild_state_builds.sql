{#
    One row per successful build of the incremental models: the as-of date
    and coverage start it built for, a fingerprint of the policy timeline
    seed and the band settings of the attrition months. int_rebuild_scope
    compares tonight's with the newest row (a moved coverage start or a
    changed timeline rebuilds everything, changed band settings every month
    of int_employee_months_banded; the lookback window starts before the
    older of the two as-of dates).

    band_settings came after the first builds: on_schema_change adds the
    column to an older table, whose rows hold null there (settings unknown:
    the months are rebuilt once).
#}

-- depends_on: {{ ref('fct_rto_compliance_weekly') }}
-- depends_on: {{ ref('int_employee_months_banded') }}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
) }}

with

bounds as (

    select * from {{ ref('int_calendar_bounds') }}

),

rto_policies as (

    select * from {{ ref('rto_policies') }}

),

final as (

    select
        {% if is_incremental() %}
        cast(
            (select coalesce(max(build_number), 0) + 1 from {{ this }}) as integer
        ) as build_number,
        {% else %}
        cast(1 as integer) as build_number,
        {% endif %}
        cast('{{ invocation_id }}' as {{ dbt.type_string() }}) as build_invocation_id,
        bounds.as_of_date,
        bounds.coverage_start,
        cast({{ policies_fingerprint('rto_policies') }} as {{ dbt.type_string() }})
            as policies_fingerprint,
        cast('{{ band_settings() }}' as {{ dbt.type_string() }}) as band_settings
    from bounds

)

select * from final
