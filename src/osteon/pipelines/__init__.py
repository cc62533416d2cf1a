"""osteon.pipelines."""
