"""osteon.pipelines: declarative cascades of runs and multi-finding studies (``docs/pipelines.md``).

``load_pipeline`` validates a pipeline YAML file; ``Pipeline.from_file(path).run(manifest)`` runs it and returns a
:class:`PipelineResult` (findings per image and per study, JSON schema ``osteon.pipeline.result/1``);
``evaluate_result`` scores the end result with CIs and attributes each error to a stage. Torch is imported only
when runs are loaded.
"""

from osteon.pipelines.schema import PipelineError, PipelineSpec, load_pipeline, parse_pipeline

__all__ = ["PipelineError", "PipelineSpec", "load_pipeline", "parse_pipeline"]
