"""Offline synthesis and policy analysis: what a stack would create, and whether the policy pack lets it through.

Needs neither the Pulumi CLI, nor provider plugins, nor AWS credentials.
"""
