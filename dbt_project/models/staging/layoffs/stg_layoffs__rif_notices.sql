with

source as (

    select * from {{ source('layoffs', 'layoffs_rif_notices') }}

),

ranked as (

    -- deltas: a notice delivered again replaces the earlier version
    -- (within one delivery the last line wins)
    select
        source.*,
        row_number() over (
            partition by notice_id
            order by
                _delivery_date desc,
                {{ code_point_order('_source_path') }} desc,
                _line_number desc nulls last
        ) as version_rank
    from source

),

final as (

    select
        notice_id,
        rif_round_id,
        employee_id,
        cast(notified_on as date) as notified_on,
        cast(separation_date as date) as separation_date,
        status,
        _delivery_date as delivery_date,
        _source_path as source_path,
        _line_number as source_line_number

    from ranked
    where version_rank = 1

)

select * from final
