"""``/api/v1/tasks``: the storefront's task API (points.tasks_apis)."""

from django.urls import path

from . import tasks_apis

urlpatterns = [
    path("tasks", tasks_apis.TaskListApi.as_view(), name="task-list"),
    path("tasks/<int:task_id>/browse-start", tasks_apis.TaskBrowseStartApi.as_view(),
         name="task-browse-start"),
    path("tasks/<int:task_id>/complete", tasks_apis.TaskCompleteApi.as_view(),
         name="task-complete"),
]
