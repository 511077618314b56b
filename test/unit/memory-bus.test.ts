import { MemoryBus } from '../../src/bus/memory-bus.js';
import { busContract } from '../helpers/bus-contract.js';

busContract('memory', { create: async (onHandlerError) => new MemoryBus({ onHandlerError }) });
