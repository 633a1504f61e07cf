"""Scripts run by the consumers' venv (Pose2Sim, OpenSim), as subprocesses: never imported by posecli."""
