/** The workflow bundle's entry: every workflow a rise worker runs. */
export { armWorkflow, experimentWorkflow, iterationWorkflow } from './experiment.ts';
