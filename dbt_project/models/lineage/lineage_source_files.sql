{{ config(enabled=(target.type == 'duckdb' and var('lineage_views', false))) }}

-- One row per file loaded, in the shape every lineage view returns.
with

source_files as (

    select * from {{ source('audit', 'source_files') }}

),

final as (

    select
        source_path,
        file_id,
        sha256,
        bytes,
        delivery_date,
        pulled_at,
        loaded_at,
        run_id as loaded_by_run_id

    from source_files
    where status = 'loaded'

)

select * from final
