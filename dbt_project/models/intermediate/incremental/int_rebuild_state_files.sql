{#
    The raw files the last successful build of the incremental models used:
    the files of int_rebuild_files (the list taken when the build started)
    appended once the weekly fact and the banded months are built.
    int_rebuild_scope reads it (as a relation, not a ref: this model comes
    after the fact) to find tonight's new badge files and the HR snapshot the
    last build saw. A build that fails before this model leaves it unchanged,
    so the next night rebuilds that night's scope again.
#}

-- depends_on: {{ ref('fct_rto_compliance_weekly') }}
-- depends_on: {{ ref('int_employee_months_banded') }}

{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
) }}

with

rebuild_files as (

    select * from {{ ref('int_rebuild_files') }}

),

final as (

    select
        rebuild_files.source_table,
        rebuild_files.file_id,
        rebuild_files.delivery_date,
        cast('{{ invocation_id }}' as {{ dbt.type_string() }}) as build_invocation_id
    from rebuild_files
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as seen
        where seen.source_table = rebuild_files.source_table
            and seen.file_id = rebuild_files.file_id
    )
    {% endif %}

)

select * from final
