import { ParseUUIDPipe, ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError, ErrorDetail } from './app-error';

/**
 * The request-body pipe: unknown fields are refused (a typo must not be silently ignored) and every
 * failure comes back as one VALIDATION_FAILED error listing each field.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => new AppError('VALIDATION_FAILED', 'The request is not valid.', { details: flatten(errors) }),
  });
}

/** Path ids are UUIDs; anything else is a malformed request, not a missing resource. */
export function uuidParam(name: string): ParseUUIDPipe {
  return new ParseUUIDPipe({
    version: '4',
    exceptionFactory: () =>
      new AppError('VALIDATION_FAILED', `${name} must be a UUID.`, { details: [{ field: name, message: `${name} must be a UUID` }] }),
  });
}

function flatten(errors: ValidationError[], parent = ''): ErrorDetail[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({
      field,
      message: message.replace(/^property (\S+) should not exist$/, '$1 is not a known field'),
    }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}
