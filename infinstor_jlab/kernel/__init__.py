"""Kernel-side adapters: what runs inside a user's notebook kernel or MLflow run
(``infin_boto3`` time travel, its :class:`~infinstor_jlab.kernel.timetravel.TimeTravel`
state, and ``test_infin_transform``). They resolve views through
:mod:`infinstor_jlab.services.views` like every other adapter."""
