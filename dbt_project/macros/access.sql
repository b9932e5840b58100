{#
    Access on a server warehouse (PostgreSQL). dbt-duckdb has no grants, so
    every macro here renders nothing on another adapter and the DuckDB build
    is unchanged.

    Roles (cluster-wide, NOLOGIN: a person's login role is granted one of them):
    - bi_reader      the marts, nothing else
    - auditor        the marts and the audit schema, read-only
    - hr_restricted  the restricted models (names and emails)
    The select grants on relations are the models' `grants` config
    (dbt_project.yml); dbt re-applies them after every rebuild. dbt does not
    grant usage on schemas: rto_grant_schema_usage does, at the end of a run.
    The audit schema is not a dbt model: rto.postgres.copy_warehouse grants it.
#}

{% macro rto_access_roles() -%}
    {{ return(['bi_reader', 'auditor', 'hr_restricted']) }}
{%- endmacro %}

{# schema -> roles that may use it (select grants on its relations come from the models) #}
{% macro rto_schema_readers() -%}
    {{ return({'marts': ['bi_reader', 'auditor'], 'restricted': ['hr_restricted']}) }}
{%- endmacro %}

{#
    Create the roles when missing. Several builds may run at once against one
    server: a concurrent creation shows up as duplicate_object or
    unique_violation and is harmless.
#}
{% macro rto_create_roles() -%}
    {%- if target.type == 'postgres' -%}
        {%- for role in rto_access_roles() %}
do $rto$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = '{{ role }}') then
        create role {{ adapter.quote(role) }} nologin;
    end if;
exception when duplicate_object or unique_violation then null;
end
$rto$;
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{% macro rto_grant_schema_usage(schemas) -%}
    {%- if target.type == 'postgres' -%}
        {%- set readers = rto_schema_readers() -%}
        {%- for schema in schemas | unique if schema in readers %}
grant usage on schema {{ adapter.quote(schema) }} to {{ readers[schema] | map('string') | map('trim') | join(', ') }};
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
