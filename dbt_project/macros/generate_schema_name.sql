{#
    Use the custom schema name as it is (staging, intermediate, marts,
    reference) instead of dbt's default "<target schema>_<custom>": the
    loader, the quality checks and the publisher all address these schemas
    by their plain names.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
