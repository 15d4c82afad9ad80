/**
 * Piscina worker entry: attaches to the shared storage and counter once, then runs tasks.
 * piscina hands its `workerData` option to the thread as worker_threads' own; importing it
 * from 'piscina' would load the whole pool's modules into every worker.
 */
import { workerData } from 'node:worker_threads';
import { createWorkerTasks } from './worker-tasks.js';
import type { Task, TaskResult, WorkerInit } from './tasks.js';

const tasks = createWorkerTasks(workerData as WorkerInit, false);

export default function run(task: Task): Promise<TaskResult> {
  return tasks.run(task);
}
