{#
    dbt's `unique` test on DuckDB, with the same result rows (unique_field,
    n_records) but without grouping the keys that cannot repeat: the first
    build groups every staging event id otherwise (311 M at 350,000 employees,
    99 s of the first night, bench/RESULTS.md). Other adapters keep dbt's own
    test (dispatch looks in the root project first).

    The non-null keys, as scanned, fall into runs in which the key strictly
    increases (vendors number their events, and a table keeps much of the
    order it was written in). No key repeats inside a run, nor between runs
    whose (first, last) ranges do not overlap; so only the rows whose key
    falls in the range of a run overlapping another run are grouped. One
    streaming pass numbers the runs. The scan order only decides how many rows
    are grouped, never the result. rto.quality.validate (_runs_that_may_repeat)
    does the same for the Great Expectations checks.
#}
{% macro duckdb__test_unique(model, column_name) %}

with

scanned as (

    select
        {{ column_name }} as unique_field,
        case when lag({{ column_name }}) over () < {{ column_name }} then 0 else 1 end as starts_run
    from {{ model }}
    where {{ column_name }} is not null

),

numbered as (

    select
        unique_field,
        starts_run,
        sum(starts_run) over (rows between unbounded preceding and current row) as run,
        coalesce(lead(starts_run) over (), 1) as ends_run
    from scanned

),

runs as (

    select run, min(unique_field) as first_key, max(unique_field) as last_key
    from numbered
    where starts_run = 1 or ends_run = 1
    group by run

),

placed as (

    select
        *,
        max(last_key) over (
            order by first_key rows between unbounded preceding and 1 preceding
        ) as last_key_before,
        lead(first_key) over (order by first_key) as first_key_after
    from runs

),

overlapping as (

    select first_key, last_key
    from placed
    where last_key_before >= first_key or first_key_after <= last_key

)

{#- the model may be a subquery with its alias (a where config): columns unqualified #}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
    and exists (
        select 1 from overlapping
        where {{ column_name }} between overlapping.first_key and overlapping.last_key
    )
group by {{ column_name }}
having count(*) > 1

{% endmacro %}
