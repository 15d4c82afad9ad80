/** Piscina worker entry: attaches to the shared storage and counter once, then runs tasks. */
import { workerData } from 'piscina';
import { createWorkerTasks } from './worker-tasks.js';
import type { Task, TaskResult, WorkerInit } from './tasks.js';

const tasks = createWorkerTasks(workerData as WorkerInit, false);

export default function run(task: Task): Promise<TaskResult> {
  return tasks.run(task);
}
