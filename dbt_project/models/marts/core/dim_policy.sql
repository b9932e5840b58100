with

rto_policies as (

    select * from {{ ref('rto_policies') }}

),

final as (

    select
        policy_id,
        name as policy_name,
        kind,
        effective_from,
        effective_to,
        required_days_per_week,
        min_presence_minutes
    from rto_policies

)

select * from final
