{#
    Data tests of the incremental models check the rows tonight's build wrote,
    not the whole history (DESIGN.md "Incremental builds"). A test configured
    with where: "__rebuild_scope__" (dbt_project.yml, data_tests) is filtered
    to the rows its model rewrote tonight (deleted, then written): on a first build or
    a full refresh that is every row. Rows outside were tested the night they
    were written and have not changed since, and a key inside the rewritten
    set cannot meet one outside it (the set is whole employees, days, weeks or
    event ids, deleted before the insert). Without this every night would
    test hundreds of millions of unchanged rows at 350,000 employees
    (bench/RESULTS.md).

    dbt documents this override of get_where_subquery for computed filters:
    the where config itself cannot call project macros.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where and '__rebuild_scope__' in where -%}
        {%- set where = where | replace('__rebuild_scope__', _tested_rows_in_scope(relation)) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#
    The rows of the tested model that tonight's build wrote, from its meta:
    - rebuild_scope {employee, date or week}: in_rebuild_scope on those columns;
    - new_files_scope {source: [source, table], key}: the rows whose key occurs
      in a raw file the last successful build had not seen (int_rebuild_state_files),
      the ids an incremental staging model ranked again tonight.
    "true" (every row) for a model without either, while parsing, and on a first
    build (no scope or state table yet). Relations are looked up in the graph: a
    ref() in a test would add them to every test's dependencies.
#}
{% macro _tested_rows_in_scope(relation) -%}
    {%- set ns = namespace(meta={}, nodes={}) -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
            {%- if node.alias | lower == relation.identifier | lower
                and node.schema | lower == relation.schema | lower -%}
                {%- set ns.meta = node.config.meta -%}
            {%- endif -%}
            {%- if node.name in ('int_rebuild_scope', 'int_rebuild_state_files') -%}
                {%- do ns.nodes.update({node.name: adapter.get_relation(
                    database=node.database, schema=node.schema, identifier=node.alias
                )}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set by_columns = ns.meta.get('rebuild_scope') -%}
    {%- set by_files = ns.meta.get('new_files_scope') -%}
    {%- set scope = ns.nodes.get('int_rebuild_scope') -%}
    {%- set state = ns.nodes.get('int_rebuild_state_files') -%}
    {%- if by_columns and scope is not none -%}
        {{ in_rebuild_scope(
            by_columns.employee, by_columns.get('date'), by_columns.get('week'), scope=scope
        ) }}
    {%- elif by_files and state is not none -%}
        {%- set raw = graph.sources['source.' ~ project_name ~ '.' ~ by_files.source | join('.')] -%}
        {%- set not_seen -%}
            _file_id not in (
                select file_id from {{ state }} where source_table = '{{ by_files.source[1] }}'
            )
        {%- endset -%}
        {#- the new files' key ranges first: a constant filter on the tested table and on
            the raw rows (the new files' rows lie in them), which DuckDB applies with
            the row groups' min/max instead of reading every row -#}
        {%- set ranges = key_ranges_of_files(raw.relation_name, by_files.key, not_seen) -%}
        {{ ranges }}
        and {{ by_files.key }} in (
            select {{ by_files.key }} from {{ raw.relation_name }} where {{ ranges }} and {{ not_seen }}
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
