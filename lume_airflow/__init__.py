"""lume_airflow: run Lume data-transformation runs from Apache Airflow.

Installed with the ``airflow`` extra (``pip install 'lume-sdk[airflow]'``) and registered as an
Airflow provider with the ``lume`` connection type (host: the base URL; password: the API key).
Deferred waits share one client, and so one poller, per connection in the triggerer.
"""

from ._hook import LumeHook
from ._operator import LumeRunOperator
from ._sensor import LumeRunSensor
from ._trigger import LumeRunTrigger

__all__ = ["LumeHook", "LumeRunOperator", "LumeRunSensor", "LumeRunTrigger"]
