import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from './error-response.dto';

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'The request is malformed: a field is missing, of the wrong type, unknown, or out of range.',
  404: 'No such resource.',
  409: 'The resource is not in a state that allows this yet.',
  422: 'What was uploaded does not match what was declared.',
  503: 'The audio store is unreachable; retry after the `Retry-After` seconds.',
};

/** Documents the error answers of an operation, all in the one error shape. */
export function ApiErrorResponses(...statuses: number[]): MethodDecorator {
  return applyDecorators(
    ...statuses.map((status) => ApiResponse({ status, description: DESCRIPTIONS[status], type: ErrorResponseDto })),
  );
}
