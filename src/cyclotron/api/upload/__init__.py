"""The file-upload face (``/upload``, ``/download``): spec/orchestrator.md."""
