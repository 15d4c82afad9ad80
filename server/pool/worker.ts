/** Piscina worker entry: attaches to the shared storage and counter once, then runs tasks. */
import { workerData } from 'piscina';
import { createHandlers } from './handlers.js';
import type { Task, TaskResult, WorkerInit } from './tasks.js';

const handlers = createHandlers(workerData as WorkerInit, false);

export default function run(task: Task): Promise<TaskResult> {
  return handlers.run(task);
}
