import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from './error-response.dto';

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'The request is malformed: a field is missing, of the wrong type, unknown, or out of range.',
  401: 'No bearer token, or one that is expired, malformed, or not signed by a trusted key.',
  404: 'No such resource, or it belongs to someone else.',
  409: 'The resource is not in a state that allows this yet.',
  413: 'The recording would take you over your storage quota; `error.remaining_bytes` says what is left.',
  422: 'What was uploaded does not match what was declared.',
  429: 'Too many requests; retry after the `Retry-After` seconds.',
  503: 'The audio store is unreachable; retry after the `Retry-After` seconds.',
};

/** Documents the error answers of an operation, all in the one error shape. */
export function ApiErrorResponses(...statuses: number[]): MethodDecorator {
  return applyDecorators(
    ...statuses.map((status) => ApiResponse({ status, description: DESCRIPTIONS[status], type: ErrorResponseDto })),
  );
}

/** A controller whose routes need a bearer token: documents the scheme and the 401 and 429 answers. */
export function ApiAuthenticated(): ClassDecorator {
  return applyDecorators(
    ApiBearerAuth(),
    ...[401, 429].map((status) => ApiResponse({ status, description: DESCRIPTIONS[status], type: ErrorResponseDto })),
  );
}
