with

source as (

    select * from {{ source('layoffs', 'layoffs_rif_rounds') }}

),

ranked as (

    -- deltas: a round delivered again replaces the earlier version
    -- (within one delivery the last line wins)
    select
        source.*,
        row_number() over (
            partition by rif_round_id
            order by
                _delivery_date desc,
                {{ code_point_order('_source_path') }} desc,
                _line_number desc nulls last
        ) as version_rank
    from source

),

final as (

    select
        rif_round_id,
        name as rif_round_name,
        cast(announced_on as date) as announced_on,
        scope_org_unit_id,
        cast(planned_reductions as integer) as planned_reductions,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from ranked
    where version_rank = 1

)

select * from final
